-- Events that have a topic for a text field, numbered in time order within their session (per field).
-- Ties in time are broken by received_at, then event_id, so the order is stable from run to run.
with

events as (
    select project_id, event_id, session_id, user_id, occurred_at, received_at
    from {{ ref('stg_raw__events') }}
),

event_topics as (
    select project_id, event_id, field, topic_id from {{ ref('stg_pipeline__event_topics') }}
),

joined as (
    select
        event_topics.project_id,
        event_topics.field,
        events.session_id,
        events.user_id,
        event_topics.event_id,
        event_topics.topic_id,
        events.occurred_at,
        events.received_at,
    from event_topics
    inner join events
        on event_topics.project_id = events.project_id
        and event_topics.event_id = events.event_id
),

final as (
    select
        project_id,
        field,
        session_id,
        user_id,
        cast(row_number() over (
            partition by project_id, field, session_id
            order by occurred_at, received_at, event_id
        ) as integer) as step_index,
        event_id,
        topic_id,
        occurred_at,
    from joined
)

select * from final
