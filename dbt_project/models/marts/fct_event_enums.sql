with

fields as (
    select * from {{ ref('int_event_fields_unpivoted') }}
),

texts as (
    select project_id, event_id, field, language from {{ ref('stg_pipeline__event_languages') }}
),

events as (
    select project_id, event_id, occurred_at from {{ ref('stg_raw__events') }}
),

-- The language of each text field is an enum of its own, '<field>_language' (turret.language), unless the
-- events carry a metadata key of that name.
text_languages as (
    select
        texts.project_id,
        texts.event_id,
        texts.field || '_language' as field,
        texts.language as value,
        events.occurred_at,
    from texts
    join events
        on texts.project_id = events.project_id
        and texts.event_id = events.event_id
    anti join fields
        on fields.project_id = texts.project_id
        and fields.event_id = texts.event_id
        and fields.field = texts.field || '_language'
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
    union all
    select project_id, event_id, field, value, occurred_at from text_languages
)

select * from final
