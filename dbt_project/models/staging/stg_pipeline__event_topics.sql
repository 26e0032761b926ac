with

source as (
    select * from {{ source('pipeline', 'event_topics') }}
),

final as (
    select
        project_id,
        event_id,
        field,
        cast(topic_id as integer) as topic_id,
        assigned_by,
        similarity,
        run_id,
    from source
)

select * from final
