-- Values that do not parse as numbers (a field typed "number" that later got a string) are left out.
with

fields as (
    select * from {{ ref('int_event_fields_unpivoted') }}
),

final as (
    select
        project_id,
        event_id,
        field,
        cast(try_cast(value as double) as double) as value,
        occurred_at,
    from fields
    where effective_type = 'number' and try_cast(value as double) is not null
)

select * from final
