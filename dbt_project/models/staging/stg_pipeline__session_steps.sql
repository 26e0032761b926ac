with

source as (
    select * from {{ source('pipeline', 'session_steps') }}
),

final as (
    select
        project_id,
        field,
        session_id,
        user_id,
        cast(step_index as integer) as step_index,
        event_id,
        cast(topic_id as integer) as topic_id,
        occurred_at,
        updated_at,
    from source
)

select * from final
