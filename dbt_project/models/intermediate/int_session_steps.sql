-- Each session's steps in the pipeline's one step order (pipeline.session_steps, turret.session_steps), with
-- the conversation-aware topic (turret.conversation) as the step's topic: acknowledgements, confirmations
-- and follow-ups carry the topic the conversation is on instead of a topic of their own. Messages the
-- conversation step has not seen (no vector yet) fall back to their own topic.
with

steps as (
    select project_id, field, session_id, user_id, step_index, event_id, topic_id, occurred_at
    from {{ ref('stg_pipeline__session_steps') }}
),

journey_topics as (
    select project_id, field, event_id, journey_topic_id, kind, segment_index
    from {{ ref('stg_pipeline__journey_topics') }}
),

final as (
    select
        steps.project_id,
        steps.field,
        steps.session_id,
        steps.user_id,
        steps.step_index,
        steps.event_id,
        cast(coalesce(journey_topics.journey_topic_id, steps.topic_id) as integer) as topic_id,
        steps.topic_id as message_topic_id,
        journey_topics.kind,
        cast(journey_topics.segment_index as integer) as segment_index,
        steps.occurred_at,
    from steps
    left join journey_topics
        on steps.project_id = journey_topics.project_id
        and steps.field = journey_topics.field
        and steps.event_id = journey_topics.event_id
)

select * from final
