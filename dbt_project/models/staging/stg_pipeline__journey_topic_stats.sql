with

source as (
    select * from {{ source('pipeline', 'journey_topic_stats') }}
),

final as (
    select
        project_id,
        field,
        cast(topic_id as integer) as topic_id,
        cast(entries as bigint) as entries,
        cast(exits as bigint) as exits,
        cast(visits as bigint) as visits,
        cast(dropoff_rate as double) as dropoff_rate,
        cast(user_entries as bigint) as user_entries,
        cast(user_exits as bigint) as user_exits,
        cast(user_visits as bigint) as user_visits,
        cast(user_dropoff_rate as double) as user_dropoff_rate,
    from source
)

select * from final
