with

source as (
    select * from {{ source('pipeline', 'fields') }}
),

final as (
    select
        project_id,
        field,
        detected_type,
        override_type,
        effective_type,
        n_values,
        n_distinct,
        updated_at,
        typed_at,
    from source
)

select * from final
