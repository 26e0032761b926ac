{#- Events per topic per period (hour or day) as a dense series, from the hourly counts (int_topic_events_hourly,
    incremental), so "growth vs previous period" compares
    with zero when a topic had no events, not with the last period that happened to have some. Each topic's
    series starts at its first period and ends at the last period seen for its (project, field). -#}
{% macro topic_trends(grain) -%}
with

counts as (
    select project_id, field, topic_id, date_trunc('{{ grain }}', period_start) as period_start, sum(events) as events
    from {{ ref('int_topic_events_hourly') }}
    group by all
),

firsts as (
    select project_id, field, topic_id, min(period_start) as first_period
    from counts
    group by all
),

bounds as (
    select
        firsts.*,
        max(counts.period_start) as last_period,
    from firsts
    inner join counts using (project_id, field)
    group by all
),

grid as (
    select
        project_id,
        field,
        topic_id,
        first_period,
        unnest(generate_series(first_period, last_period, interval 1 {{ grain }})) as period_start
    from bounds
),

filled as (
    select
        grid.project_id,
        grid.field,
        grid.topic_id,
        grid.period_start,
        coalesce(counts.events, 0) as events,
        grid.period_start = grid.first_period as is_new_topic
    from grid
    left join counts using (project_id, field, topic_id, period_start)
),

final as (
    select
        project_id,
        field,
        cast(topic_id as integer) as topic_id,
        cast(period_start as timestamp) as period_start,
        cast(period_start + interval 1 {{ grain }} as timestamp) as period_end,
        cast(events as bigint) as events,
        cast(coalesce(lag(events) over w, 0) as bigint) as previous_events,
        cast(
            case when coalesce(lag(events) over w, 0) = 0 then null
                 else (events - lag(events) over w) / lag(events) over w end
            as double
        ) as growth,
        is_new_topic
    from filled
    window w as (partition by project_id, field, topic_id order by period_start)
)

select * from final
{%- endmacro %}
