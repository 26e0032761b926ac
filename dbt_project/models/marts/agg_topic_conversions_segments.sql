-- agg_topic_conversions_daily split by the enum values of the messages (fct_event_enums): one row per
-- topic, day, enum field and value. A message without the enum field is in no row of that field.
with

messages as (
    select * from {{ ref('int_topic_messages_outcomes_summed') }}
),

enums as (
    select project_id, event_id, field as enum_field, value as enum_value from {{ ref('fct_event_enums') }}
),

final as (
    select
        messages.project_id,
        messages.field,
        messages.topic_id,
        messages.message_date,
        enums.enum_field,
        enums.enum_value,
        {{ conversion_measures() }}
    from messages
    inner join enums
        on messages.project_id = enums.project_id
        and messages.event_id = enums.event_id
    group by all
)

select * from final
