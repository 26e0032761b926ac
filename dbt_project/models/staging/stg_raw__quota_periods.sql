-- Each project's quota periods as the plan rules (turret.plans) lay them out; the loader writes them.
with

source as (
    select * from {{ source('raw', 'quota_periods') }}
),

final as (
    select
        project_id,
        period_start,
        period_end,
        cast(event_limit as bigint) as event_limit,
    from source
)

select * from final
