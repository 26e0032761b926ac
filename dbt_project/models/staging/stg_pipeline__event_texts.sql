with

source as (
    select * from {{ source('pipeline', 'event_texts') }}
),

final as (
    select
        project_id,
        event_id,
        field,
        text_hash,
        text,
    from source
)

select * from final
