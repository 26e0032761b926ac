-- Events that have a topic for a text field, numbered in time order within their session (per field), with
-- the conversation-aware topic (turret.conversation) as the step's topic: acknowledgements, confirmations
-- and follow-ups carry the topic the conversation is on instead of a topic of their own. Messages the
-- conversation step has not seen (no vector yet) fall back to their own topic. Ties in time are broken by
-- received_at, then event_id, so the order is stable from run to run (turret.journey_topics uses the same).
with

events as (
    select project_id, event_id, session_id, user_id, occurred_at, received_at
    from {{ ref('stg_raw__events') }}
),

event_topics as (
    select project_id, event_id, field, topic_id from {{ ref('stg_pipeline__event_topics') }}
),

journey_topics as (
    select project_id, field, event_id, journey_topic_id, kind, segment_index
    from {{ ref('stg_pipeline__journey_topics') }}
),

joined as (
    select
        event_topics.project_id,
        event_topics.field,
        events.session_id,
        events.user_id,
        event_topics.event_id,
        coalesce(journey_topics.journey_topic_id, event_topics.topic_id) as topic_id,
        event_topics.topic_id as message_topic_id,
        journey_topics.kind,
        journey_topics.segment_index,
        events.occurred_at,
        events.received_at,
    from event_topics
    inner join events
        on event_topics.project_id = events.project_id
        and event_topics.event_id = events.event_id
    left join journey_topics
        on event_topics.project_id = journey_topics.project_id
        and event_topics.field = journey_topics.field
        and event_topics.event_id = journey_topics.event_id
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
        cast(topic_id as integer) as topic_id,
        cast(message_topic_id as integer) as message_topic_id,
        kind,
        cast(segment_index as integer) as segment_index,
        occurred_at,
    from joined
)

select * from final
