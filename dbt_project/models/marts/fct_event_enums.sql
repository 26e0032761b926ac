-- Incremental by event (macros/incremental.sql): events loaded since the last build, and every event of a
-- project whose fields were typed anew.
{{ incremental_mart(['project_id', 'event_id'], 'changed_loaded_events') }}
with

fields as (
    select * from {{ ref('int_event_fields_unpivoted') }}
    {{ only_changed(['project_id', 'event_id'], changed_loaded_events()) }}
),

texts as (
    select project_id, event_id, field, language from {{ ref('stg_pipeline__event_languages') }}
    {{ only_changed(['project_id', 'event_id'], changed_loaded_events()) }}
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
        {{ build_stamp() }} as updated_at,
    from fields
    where effective_type = 'enum' and value is not null
    union all
    select project_id, event_id, field, value, occurred_at, {{ build_stamp() }} from text_languages
)

select * from final
