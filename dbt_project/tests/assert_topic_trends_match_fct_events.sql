-- Each topic's hourly and daily series adds up to its rows in fct_events, has exactly one is_new_topic row
-- and it is the series' first period, and every period_end is one period after its period_start.
with

facts as (
    select project_id, field, topic_id, count(*) as fact_events
    from {{ ref('fct_events') }}
    group by all
),

expected as (
    select grains.grain, facts.*
    from facts
    cross join (values ('hour'), ('day')) as grains(grain)
),

series as (
{%- for grain, model in [('hour', 'fct_topic_trends_hourly'), ('day', 'fct_topic_trends_daily')] %}
    select
        '{{ grain }}' as grain,
        project_id,
        field,
        topic_id,
        sum(events) as series_events,
        count(*) filter (where is_new_topic) as new_topic_rows,
        min(period_start) filter (where is_new_topic) = min(period_start) as starts_new,
        bool_and(period_end = period_start + interval 1 {{ grain }}) as periods_whole,
    from {{ ref(model) }}
    group by all
    {% if not loop.last %}union all{% endif %}
{%- endfor %}
)

select *
from expected
full outer join series using (grain, project_id, field, topic_id)
where series_events is distinct from fact_events
    or new_topic_rows is distinct from 1
    or not coalesce(starts_new, false)
    or not coalesce(periods_whole, false)
