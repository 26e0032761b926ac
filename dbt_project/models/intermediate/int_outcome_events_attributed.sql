-- Each outcome event credited to one message, then to that message's topic in each of its text fields.
-- An outcome naming a request (request.request_id) goes to that request's message, whatever sessions the
-- two landed in; any other outcome goes to the latest message at or before it in its session. Outcomes
-- with neither (no such message yet) are credited nowhere until the message has a topic.
with

outcomes as (
    select * from {{ ref('int_outcome_events') }}
),

messages as (
    select * from {{ ref('int_topic_messages') }}
),

anchors as (
    select distinct project_id, event_id, session_id, occurred_at from messages
),

by_request as (
    select
        outcomes.project_id,
        outcomes.event_id as outcome_event_id,
        anchors.event_id as message_event_id,
        'request' as attributed_by,
    from outcomes
    inner join anchors
        on outcomes.project_id = anchors.project_id
        and outcomes.followed_request_id = anchors.event_id
),

by_session as (
    select
        outcomes.project_id,
        outcomes.event_id as outcome_event_id,
        anchors.event_id as message_event_id,
        'session' as attributed_by,
    from outcomes
    asof inner join anchors
        on outcomes.project_id = anchors.project_id
        and outcomes.session_id = anchors.session_id
        and outcomes.occurred_at >= anchors.occurred_at
    anti join by_request
        on outcomes.project_id = by_request.project_id
        and outcomes.event_id = by_request.outcome_event_id
),

links as (
    select * from by_request
    union all
    select * from by_session
),

final as (
    select
        links.project_id,
        links.outcome_event_id,
        links.message_event_id,
        messages.field,
        messages.topic_id,
        messages.message_date,
        links.attributed_by,
        outcomes.contract,
        outcomes.outcome_type,
        outcomes.is_conversion,
        cast(outcomes.revenue as double) as revenue,
        cast(epoch(outcomes.occurred_at) - epoch(messages.occurred_at) as double) as seconds_after_message,
    from links
    inner join outcomes
        on links.project_id = outcomes.project_id
        and links.outcome_event_id = outcomes.event_id
    inner join messages
        on links.project_id = messages.project_id
        and links.message_event_id = messages.event_id
)

select * from final
