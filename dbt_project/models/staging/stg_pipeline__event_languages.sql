with

source as (
    select * from {{ source('pipeline', 'event_languages') }}
),

final as (
    select
        project_id,
        event_id,
        field,
        language,
    from source
)

select * from final
