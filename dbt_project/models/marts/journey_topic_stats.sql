-- Per topic: journeys that start there, end there and visit it, per session and per user across sessions
-- (turret.journeys, computed before dbt into pipeline.journey_topic_stats).
with

stats as (
    select * from {{ ref('stg_pipeline__journey_topic_stats') }}
),

final as (
    select
        project_id,
        field,
        topic_id,
        entries,
        exits,
        visits,
        dropoff_rate,
        user_entries,
        user_exits,
        user_visits,
        user_dropoff_rate,
    from stats
)

select * from final
