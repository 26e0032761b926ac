with

source as (
    select * from {{ source('pipeline', 'runs') }}
),

final as (
    select
        run_id,
        kind as run_kind,
        started_at,
        finished_at,
        data_interval_start,
        data_interval_end,
    from source
)

select * from final
