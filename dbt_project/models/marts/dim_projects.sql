with

projects as (
    select * from {{ ref('stg_raw__projects') }}
),

event_stats as (
    select project_id, count(*) as events, min(occurred_at) as first_event_at, max(occurred_at) as last_event_at
    from {{ ref('stg_raw__events') }}
    group by all
),

final as (
    select
        projects.project_id,
        projects.project_name,
        projects.plan,
        cast(projects.monthly_limit as bigint) as monthly_limit,
        projects.created_at,
        cast(coalesce(event_stats.events, 0) as bigint) as events,
        event_stats.first_event_at,
        event_stats.last_event_at,
    from projects
    left join event_stats using (project_id)
)

select * from final
