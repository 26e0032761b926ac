-- Events per topic and hour, the counts the trend marts densify. Incremental by hour (macros/incremental.sql):
-- a run recounts the hours that hold an event fct_events wrote since the last build, and any hour whose
-- total no longer matches fct_events (an event that went away), so an hour's cost follows what changed.
{{ incremental_mart(['project_id', 'field', 'period_start'], 'changed_hours') }}
with

events as (
    select project_id, field, topic_id, date_trunc('hour', occurred_at) as period_start
    from {{ ref('fct_events') }}
    {%- if is_incremental() %}
    where (project_id, field, date_trunc('hour', occurred_at)) in ({{ changed_hours() }})
    {%- endif %}
),

final as (
    select
        project_id,
        field,
        cast(topic_id as integer) as topic_id,
        cast(period_start as timestamp) as period_start,
        cast(count(*) as bigint) as events,
        {{ build_stamp() }} as updated_at,
    from events
    group by project_id, field, topic_id, period_start
)

select * from final
