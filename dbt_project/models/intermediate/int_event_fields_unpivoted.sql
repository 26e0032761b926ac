-- One row per event and metadata key, with the key's effective type from pipeline.fields (null while the
-- field has not been typed yet). Metadata keys are dynamic, so enum and number values are kept long.
with

events as (
    select project_id, event_id, occurred_at, metadata from {{ ref('stg_raw__events') }}
),

fields as (
    select project_id, field, effective_type from {{ ref('stg_pipeline__fields') }}
),

unpivoted as (
    select
        project_id,
        event_id,
        occurred_at,
        unnest(json_keys(metadata)) as field,
        metadata,
    from events
),

final as (
    select
        unpivoted.project_id,
        unpivoted.event_id,
        unpivoted.occurred_at,
        unpivoted.field,
        json_type(unpivoted.metadata -> unpivoted.field) as json_type,
        unpivoted.metadata ->> unpivoted.field as value,
        fields.effective_type,
    from unpivoted
    left join fields
        on unpivoted.project_id = fields.project_id
        and unpivoted.field = fields.field
)

select * from final
