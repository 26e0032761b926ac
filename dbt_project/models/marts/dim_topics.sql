-- Every topic of every (project, text field) as the topic engine wrote it (pipeline.topics). The engine owns
-- the "Unclustered" topic (topic_id -1, turret.topics.store): it writes that row for every (project, text
-- field) it assigns, so every fact finds its topic here (the relationships test on fct_events).
with

topics as (
    select * from {{ ref('stg_pipeline__topics') }}
),

themes as (
    select * from {{ ref('stg_pipeline__themes') }}
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
        topics.project_id,
        topics.field,
        cast(topics.topic_id as integer) as topic_id,
        topics.project_id || '|' || topics.field || '|' || topics.topic_id as topic_key,
        topics.topic_label as label,
        topics.topic_description as description,
        topics.keywords,
        topics.label_source,
        cast(topics.theme_id as integer) as theme_id,
        themes.theme_label as theme,
        cast(topics.topic_size as bigint) as size,
        cast(coalesce(event_stats.events, 0) as bigint) as events,
        event_stats.first_seen_at,
        event_stats.last_seen_at,
        -- The latest lineage change says more than the engine's status ("split", "merged"), except that a
        -- retired topic stays retired.
        case
            when topics.topic_status = 'retired' then 'retired'
            else coalesce(latest_lineage.change, topics.topic_status)
        end as status,
        latest_lineage.run_id as status_run_id,
        topics.topic_id = -1 as is_unclustered,
        topics.topic_kind = 'conversational' as is_conversational,
    from topics
    left join themes
        on topics.project_id = themes.project_id
        and topics.field = themes.field
        and topics.theme_id = themes.theme_id
    left join event_stats
        on topics.project_id = event_stats.project_id
        and topics.field = event_stats.field
        and topics.topic_id = event_stats.topic_id
    left join latest_lineage
        on topics.project_id = latest_lineage.project_id
        and topics.field = latest_lineage.field
        and topics.topic_id = latest_lineage.topic_id
)

select * from final
