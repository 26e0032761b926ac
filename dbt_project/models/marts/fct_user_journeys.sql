-- One row per user, text field and session, in session order: where each session started and how the
-- previous one ended, for cross-session journeys (docs: "Cross-session analysis with user_id").
-- Incremental by user (macros/incremental.sql): the users with a session whose steps or journey topics
-- changed, since session_order and previous_* depend on all of a user's sessions.
{{ incremental_mart(['project_id', 'field', 'user_id'], 'changed_users') }}
with

steps as (
    select * from {{ ref('int_session_steps') }}
    {{ only_changed(['project_id', 'field', 'user_id'], changed_users()) }}
),

sessions as (
    select
        project_id,
        field,
        user_id,
        session_id,
        min(occurred_at) as session_started_at,
        max(occurred_at) as session_ended_at,
        count(*) as steps,
        -- The first and last topic the session was on: steps before the conversation said anything
        -- topical (segment_index -1) do not count; a message's own Unclustered topic (-1) does.
        coalesce(
            arg_min(topic_id, step_index) filter (where coalesce(segment_index, 0) >= 0), -1
        ) as first_topic_id,
        coalesce(
            arg_max(topic_id, step_index) filter (where coalesce(segment_index, 0) >= 0), -1
        ) as last_topic_id,
    from steps
    group by all
),

final as (
    select
        project_id,
        field,
        user_id,
        session_id,
        cast(row_number() over w as integer) as session_order,
        session_started_at,
        session_ended_at,
        cast(steps as bigint) as steps,
        cast(first_topic_id as integer) as first_topic_id,
        cast(last_topic_id as integer) as last_topic_id,
        lag(session_id) over w as previous_session_id,
        cast(lag(last_topic_id) over w as integer) as previous_session_last_topic_id,
        {{ build_stamp() }} as updated_at,
    from sessions
    window w as (partition by project_id, field, user_id order by session_started_at, session_id)
)

select * from final
