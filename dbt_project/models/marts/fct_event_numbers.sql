-- Values that do not parse as numbers (a field typed "number" that later got a string) are left out.
-- Incremental by event (macros/incremental.sql): events loaded since the last build, and every event of a
-- project whose fields were typed anew.
{{ incremental_mart(['project_id', 'event_id'], 'changed_loaded_events') }}
with

fields as (
    select * from {{ ref('int_event_fields_unpivoted') }}
    {{ only_changed(['project_id', 'event_id'], changed_loaded_events()) }}
),

final as (
    select
        project_id,
        event_id,
        field,
        cast(try_cast(value as double) as double) as value,
        occurred_at,
        {{ build_stamp() }} as updated_at,
    from fields
    where effective_type = 'number' and try_cast(value as double) is not null
)

select * from final
