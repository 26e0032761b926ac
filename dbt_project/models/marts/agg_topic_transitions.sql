-- Topic-to-topic moves within sessions and the probability of each next topic given the current one.
-- Repeats (same topic twice in a row) are left out, so probabilities describe where users go next.
with

transitions as (
    select * from {{ ref('fct_session_transitions') }} where not is_repeat
),

topics as (
    select project_id, field, topic_id, label from {{ ref('dim_topics') }}
),

counted as (
    select
        project_id,
        field,
        from_topic_id,
        to_topic_id,
        count(*) as transitions,
        count(distinct session_id) as sessions,
        avg(seconds_between) as avg_seconds_between,
    from transitions
    group by all
),

final as (
    select
        counted.project_id,
        counted.field,
        cast(counted.from_topic_id as integer) as from_topic_id,
        cast(counted.to_topic_id as integer) as to_topic_id,
        from_topics.label as from_label,
        to_topics.label as to_label,
        cast(counted.transitions as bigint) as transitions,
        cast(counted.sessions as bigint) as sessions,
        cast(
            counted.transitions / sum(counted.transitions) over (
                partition by counted.project_id, counted.field, counted.from_topic_id
            ) as double
        ) as probability,
        cast(counted.avg_seconds_between as double) as avg_seconds_between,
    from counted
    left join topics as from_topics
        on counted.project_id = from_topics.project_id
        and counted.field = from_topics.field
        and counted.from_topic_id = from_topics.topic_id
    left join topics as to_topics
        on counted.project_id = to_topics.project_id
        and counted.field = to_topics.field
        and counted.to_topic_id = to_topics.topic_id
)

select * from final
