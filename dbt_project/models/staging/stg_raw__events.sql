with

source as (
    select * from {{ source('raw', 'events') }}
),

final as (
    select
        project_id,
        event_id,
        contract,
        event_type,
        name as event_name,
        session_id,
        user_id,
        session_id_generated as is_session_id_generated,
        user_id_generated as is_user_id_generated,
        occurred_at,
        received_at,
        metadata,
        segment,
        line_no,
    from source
)

select * from final
