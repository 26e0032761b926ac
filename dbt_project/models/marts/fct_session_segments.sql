-- Per session, the ordered topical segments of the conversation: which topic, from which message to which,
-- how many messages. Topic switches are first-class here: transitions, paths and drop-offs derive from
-- these runs. Conversational messages (greetings, thanks, confirmations) stay inside the segment they
-- interrupt and are counted apart; messages before anything topical belong to no segment.
-- Incremental by session (macros/incremental.sql): the sessions whose steps or journey topics changed. Topic
-- labels change without the sessions changing: they are in dim_topics, not here.
{{ incremental_mart(['project_id', 'field', 'session_id'], 'changed_sessions') }}
with

steps as (
    select * from {{ ref('int_session_steps') }}
    where segment_index >= 0
    {%- if is_incremental() %}
      and (project_id, field, session_id) in ({{ changed_sessions() }})
    {%- endif %}
),

-- The first message's name and enum values, so a filter on them is a column predicate here too.
events as (
    select project_id, field, event_id, event_name, enum_values from {{ ref('fct_events') }}
    {{ only_changed(['project_id', 'field', 'session_id'], changed_sessions()) }}
),

segments as (
    select
        project_id,
        field,
        session_id,
        min(user_id) as user_id,
        segment_index,
        min(topic_id) as topic_id,
        arg_min(event_id, step_index) as first_event_id,
        arg_max(event_id, step_index) as last_event_id,
        min(step_index) as first_step_index,
        max(step_index) as last_step_index,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) filter (where kind in ('topical', 'continuation')) as messages,
        count(*) filter (where kind in ('greeting', 'closing', 'confirmation')) as conversational_messages,
    from steps
    group by project_id, field, session_id, segment_index
),

final as (
    select
        segments.project_id,
        segments.field,
        segments.session_id,
        segments.user_id,
        cast(segments.segment_index as integer) as segment_index,
        cast(segments.topic_id as integer) as topic_id,
        segments.first_event_id,
        segments.last_event_id,
        cast(segments.first_step_index as integer) as first_step_index,
        cast(segments.last_step_index as integer) as last_step_index,
        segments.started_at,
        segments.ended_at,
        cast(segments.messages as bigint) as messages,
        cast(segments.conversational_messages as bigint) as conversational_messages,
        cast(lag(segments.topic_id) over w as integer) as previous_topic_id,
        segments.segment_index = max(segments.segment_index) over (
            partition by segments.project_id, segments.field, segments.session_id
        ) as is_last_segment,
        events.event_name as first_event_name,
        events.enum_values as first_enum_values,
        {{ build_stamp() }} as updated_at,
    from segments
    left join events
        on segments.project_id = events.project_id
        and segments.field = events.field
        and segments.first_event_id = events.event_id
    window w as (
        partition by segments.project_id, segments.field, segments.session_id order by segments.segment_index
    )
)

select * from final
