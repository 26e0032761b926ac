-- One row per message (an event with a topic in a text field) and the topic its outcomes count for: the
-- topic the conversation is on at that message (pipeline.journey_topics) where it has one, else the
-- message's own topic. So "thanks, I'll take it" before a purchase credits the topic being discussed.
with

events as (
    select project_id, event_id, session_id, occurred_at from {{ ref('stg_raw__events') }}
),

event_topics as (
    select project_id, event_id, field, topic_id from {{ ref('stg_pipeline__event_topics') }}
),

journey_topics as (
    select project_id, field, event_id, journey_topic_id from {{ ref('stg_pipeline__journey_topics') }}
),

final as (
    select
        event_topics.project_id,
        event_topics.event_id,
        event_topics.field,
        cast(
            case
                when journey_topics.journey_topic_id >= 0 then journey_topics.journey_topic_id
                else event_topics.topic_id
            end as integer
        ) as topic_id,
        events.session_id,
        events.occurred_at,
        cast(events.occurred_at as date) as message_date,
    from event_topics
    inner join events
        on event_topics.project_id = events.project_id
        and event_topics.event_id = events.event_id
    left join journey_topics
        on event_topics.project_id = journey_topics.project_id
        and event_topics.field = journey_topics.field
        and event_topics.event_id = journey_topics.event_id
)

select * from final
