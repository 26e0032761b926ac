-- One row per consecutive pair of steps within a session (per text field), on the conversation-aware topics
-- of int_session_steps. is_repeat marks a step that stays in the same topic (a rephrased question, a
-- "thanks"); agg_topic_transitions and the journeys leave those out. Steps before the session has said
-- anything topical (segment_index -1, e.g. a greeting) start no transition: the first topic is an entry.
-- Incremental by session (macros/incremental.sql): the sessions whose steps or journey topics changed.
{{ incremental_mart(['project_id', 'field', 'session_id'], 'changed_sessions') }}
with

steps as (
    select * from {{ ref('int_session_steps') }}
    {{ only_changed(['project_id', 'field', 'session_id'], changed_sessions()) }}
),

-- The departing event's name and enum values, so a filter on them is a column predicate here too.
events as (
    select project_id, field, event_id, event_name, enum_values from {{ ref('fct_events') }}
    {{ only_changed(['project_id', 'field', 'session_id'], changed_sessions()) }}
),

paired as (
    select
        project_id,
        field,
        session_id,
        user_id,
        step_index,
        lag(event_id) over w as from_event_id,
        event_id as to_event_id,
        lag(topic_id) over w as from_topic_id,
        topic_id as to_topic_id,
        lag(occurred_at) over w as from_occurred_at,
        lag(segment_index) over w as from_segment_index,
        occurred_at as to_occurred_at,
    from steps
    window w as (partition by project_id, field, session_id order by step_index)
),

final as (
    select
        paired.project_id,
        paired.field,
        paired.session_id,
        paired.user_id,
        cast(paired.step_index as integer) as step_index,
        paired.from_event_id,
        paired.to_event_id,
        cast(paired.from_topic_id as integer) as from_topic_id,
        cast(paired.to_topic_id as integer) as to_topic_id,
        paired.from_occurred_at,
        paired.to_occurred_at,
        cast(epoch(paired.to_occurred_at) - epoch(paired.from_occurred_at) as double) as seconds_between,
        paired.from_topic_id = paired.to_topic_id as is_repeat,
        events.event_name as from_event_name,
        events.enum_values as from_enum_values,
        {{ build_stamp() }} as updated_at,
    from paired
    left join events
        on paired.project_id = events.project_id
        and paired.field = events.field
        and paired.from_event_id = events.event_id
    where paired.from_event_id is not null and coalesce(paired.from_segment_index, 0) >= 0
)

select * from final
