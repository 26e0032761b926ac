-- Project x text field x day of occurred_at (UTC): events, distinct sessions and users. The dashboard's
-- Overview draws its daily series from here instead of counting fct_events on every request.
with

events as (
    select project_id, field, session_id, user_id, occurred_at from {{ ref('fct_events') }}
),

final as (
    select
        project_id,
        field,
        cast(occurred_at as date) as event_date,
        cast(count(*) as bigint) as events,
        cast(count(distinct session_id) as bigint) as sessions,
        cast(count(distinct user_id) as bigint) as users,
        max(occurred_at) as last_event_at,
    from events
    group by all
)

select * from final
