with

source as (
    select * from {{ source('raw', 'loaded_segments') }}
),

final as (
    select
        segment,
        loaded_at,
        rows_loaded,
        rows_quarantined,
        rows_duplicate,
    from source
)

select * from final
