with

source as (
    select * from {{ source('pipeline', 'themes') }}
),

final as (
    select
        project_id,
        field,
        cast(theme_id as integer) as theme_id,
        label as theme_label,
        description as theme_description,
    from source
)

select * from final
