-- One row per event and text field that the topic engine has assigned a topic to. Events without a text
-- field, or not yet assigned, are not here (they still count in fct_quota_usage and the enum/number tables).
with

events as (
    select * from {{ ref('stg_raw__events') }}
),

event_topics as (
    select * from {{ ref('stg_pipeline__event_topics') }}
),

event_texts as (
    select project_id, event_id, field, text from {{ ref('stg_pipeline__event_texts') }}
),

journey_topics as (
    select project_id, field, event_id, journey_topic_id, kind from {{ ref('stg_pipeline__journey_topics') }}
),

final as (
    select
        event_topics.project_id,
        event_topics.event_id,
        event_topics.field,
        cast(event_topics.topic_id as integer) as topic_id,
        cast(journey_topics.journey_topic_id as integer) as journey_topic_id,
        journey_topics.kind as message_kind,
        events.event_name,
        events.contract,
        events.event_type,
        events.session_id,
        events.user_id,
        events.occurred_at,
        events.received_at,
        event_topics.assigned_by,
        cast(event_topics.similarity as double) as similarity,
        event_topics.run_id,
        event_texts.text,
    from event_topics
    inner join events
        on event_topics.project_id = events.project_id
        and event_topics.event_id = events.event_id
    left join event_texts
        on event_topics.project_id = event_texts.project_id
        and event_topics.event_id = event_texts.event_id
        and event_topics.field = event_texts.field
    left join journey_topics
        on event_topics.project_id = journey_topics.project_id
        and event_topics.event_id = journey_topics.event_id
        and event_topics.field = journey_topics.field
)

select * from final
