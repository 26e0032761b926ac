with

fields as (
    select * from {{ ref('int_event_fields_unpivoted') }}
),

final as (
    select
        project_id,
        event_id,
        field,
        cast(value as varchar) as value,
        occurred_at,
    from fields
    where effective_type = 'enum' and value is not null
)

select * from final
