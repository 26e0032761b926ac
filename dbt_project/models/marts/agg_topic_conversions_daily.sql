-- What each topic earns, per day: its messages (searches, RAG questions, /track messages), what followed
-- them (views, clicks, add-to-cart, purchases, conversions, revenue) and how long conversion took. An
-- outcome counts on the day of the message it is credited to (int_outcome_events_attributed).
with

messages as (
    select * from {{ ref('int_topic_messages_outcomes_summed') }}
),

topics as (
    select project_id, field, topic_id, topic_label from {{ ref('stg_pipeline__topics') }}
),

measured as (
    select
        project_id,
        field,
        topic_id,
        message_date,
        {{ conversion_measures() }}
    from messages
    group by all
),

final as (
    select
        measured.project_id,
        measured.field,
        measured.topic_id,
        topics.topic_label,
        measured.message_date,
        measured.* exclude (project_id, field, topic_id, message_date),
    from measured
    left join topics
        on measured.project_id = topics.project_id
        and measured.field = topics.field
        and measured.topic_id = topics.topic_id
)

select * from final
