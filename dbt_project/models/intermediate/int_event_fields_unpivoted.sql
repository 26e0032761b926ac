-- One row per event and metadata key, with the key's effective type from pipeline.fields (null while the
-- field has not been typed yet). Metadata keys are dynamic, so enum and number values are kept long.
with

events as (
    select project_id, event_id, occurred_at, metadata from {{ ref('stg_raw__events') }}
),

fields as (
    select project_id, field, effective_type from {{ ref('stg_pipeline__fields') }}
),

-- json_each walks the key/value pairs: a key is a name, never a JSON path ("$prompt", "a.b" and "c[0]" are
-- keys like any other; turret.bounds).
unpivoted as (
    select
        events.project_id,
        events.event_id,
        events.occurred_at,
        entry.key as field,
        json_type(entry.value) as json_type,
        entry.value ->> '$' as value,
    from events, json_each(events.metadata) as entry
),

final as (
    select
        unpivoted.project_id,
        unpivoted.event_id,
        unpivoted.occurred_at,
        unpivoted.field,
        unpivoted.json_type,
        unpivoted.value,
        fields.effective_type,
    from unpivoted
    left join fields
        on unpivoted.project_id = fields.project_id
        and unpivoted.field = fields.field
)

select * from final
