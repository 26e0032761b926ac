with

source as (
    select * from {{ source('pipeline', 'journey_topics') }}
),

final as (
    select
        project_id,
        field,
        event_id,
        session_id,
        cast(journey_topic_id as integer) as journey_topic_id,
        kind,
        cast(segment_index as integer) as segment_index,
        updated_at,
    from source
)

select * from final
