-- Every topic of every (project, text field), plus an explicit "Unclustered" row (topic_id -1) for each
-- (project, text field) even when the topic engine has not written one, so facts always find a topic.
with

topics as (
    select * from {{ ref('stg_pipeline__topics') }}
),

themes as (
    select * from {{ ref('stg_pipeline__themes') }}
),

text_fields as (
    select project_id, field from {{ ref('stg_pipeline__fields') }} where effective_type = 'text'
    union
    select project_id, field from topics
    union
    select project_id, field from {{ ref('stg_pipeline__event_topics') }}
),

unclustered as (
    select
        text_fields.project_id,
        text_fields.field,
        -1 as topic_id,
        'Unclustered' as topic_label,
        'Texts that did not fit any topic' as topic_description,
        '[]' as keywords,
        'none' as label_source,
        cast(null as integer) as theme_id,
        cast(0 as bigint) as topic_size,
        'active' as topic_status,
    from text_fields
    anti join topics
        on text_fields.project_id = topics.project_id
        and text_fields.field = topics.field
        and topics.topic_id = -1
),

all_topics as (
    select
        project_id, field, topic_id, topic_label, topic_description, keywords, label_source, theme_id,
        topic_size, topic_status,
    from topics
    union all
    select * from unclustered
),

event_stats as (
    select
        project_id,
        field,
        topic_id,
        count(*) as events,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
    from {{ ref('fct_events') }}
    group by all
),

latest_lineage as (
    select project_id, field, topic_id, change, run_id, created_at
    from {{ ref('stg_pipeline__topic_lineage') }}
    qualify row_number() over (
        partition by project_id, field, topic_id order by created_at desc, run_id desc
    ) = 1
),

final as (
    select
        all_topics.project_id,
        all_topics.field,
        cast(all_topics.topic_id as integer) as topic_id,
        all_topics.project_id || '|' || all_topics.field || '|' || all_topics.topic_id as topic_key,
        all_topics.topic_label as label,
        all_topics.topic_description as description,
        all_topics.keywords,
        all_topics.label_source,
        cast(all_topics.theme_id as integer) as theme_id,
        themes.theme_label as theme,
        cast(all_topics.topic_size as bigint) as size,
        cast(coalesce(event_stats.events, 0) as bigint) as events,
        event_stats.first_seen_at,
        event_stats.last_seen_at,
        -- The latest lineage change says more than the engine's status ("split", "merged"), except that a
        -- retired topic stays retired.
        case
            when all_topics.topic_status = 'retired' then 'retired'
            else coalesce(latest_lineage.change, all_topics.topic_status)
        end as status,
        latest_lineage.run_id as status_run_id,
        all_topics.topic_id = -1 as is_unclustered,
    from all_topics
    left join themes
        on all_topics.project_id = themes.project_id
        and all_topics.field = themes.field
        and all_topics.theme_id = themes.theme_id
    left join event_stats
        on all_topics.project_id = event_stats.project_id
        and all_topics.field = event_stats.field
        and all_topics.topic_id = event_stats.topic_id
    left join latest_lineage
        on all_topics.project_id = latest_lineage.project_id
        and all_topics.field = latest_lineage.field
        and all_topics.topic_id = latest_lineage.topic_id
)

select * from final
