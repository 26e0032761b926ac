-- One row per event and text field that the topic engine has assigned a topic to. Events without a text
-- field, or not yet assigned, are not here (they still count in fct_quota_usage and the enum/number tables).
-- Incremental by session (macros/incremental.sql): a run rebuilds the events of the sessions whose steps or
-- journey topics changed, since a message's journey topic depends on its whole session.
{{ incremental_mart(['project_id', 'field', 'session_id'], 'changed_sessions') }}
with

changed as (
    select distinct project_id, field, session_id from {{ ref('stg_pipeline__session_steps') }}
    {{ only_changed(['project_id', 'field', 'session_id'], changed_sessions()) }}
),

events as (
    select * from {{ ref('stg_raw__events') }}
    {% if is_incremental() -%}
    where (project_id, session_id) in (select project_id, session_id from changed)
    {%- endif %}
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

event_enums as (
    select project_id, event_id, field, value from {{ ref('fct_event_enums') }}
    {% if is_incremental() -%}
    where (project_id, event_id) in (select project_id, event_id from events)
    {%- endif %}
),

-- Every enum value of the event in one string, so a dashboard filter is a column predicate
-- (contains(enum_values, '|platform=web|')) instead of a join with the long enum table.
enum_values as (
    select
        project_id,
        event_id,
        '|' || string_agg({{ enum_value_key('field', 'value') }}, '|' order by field) || '|' as enum_values,
    from event_enums
    group by project_id, event_id
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
        enum_values.enum_values,
        {{ build_stamp() }} as updated_at,
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
    left join enum_values
        on event_topics.project_id = enum_values.project_id
        and event_topics.event_id = enum_values.event_id
    {% if is_incremental() -%}
    where (event_topics.project_id, event_topics.field, events.session_id) in (select * from changed)
    {%- endif %}
)

select * from final
