-- The most frequent topic paths (turret.journeys, computed before dbt into pipeline.journey_paths), spelled
-- in topic labels from dim_topics so BI tools can show them as they are: 'Password reset > Pricing plans'.
-- A topic dim_topics does not know (yet) shows as its id.
with

paths as (
    select * from {{ ref('stg_pipeline__journey_paths') }}
),

topics as (
    select project_id, field, topic_id, label from {{ ref('dim_topics') }}
),

steps as (
    select
        project_id,
        field,
        scope,
        path_topic_ids,
        unnest(path_topic_ids) as topic_id,
        unnest(range(1, len(path_topic_ids) + 1)) as step,
    from paths
),

labelled as (
    select
        steps.project_id,
        steps.field,
        steps.scope,
        steps.path_topic_ids,
        string_agg(coalesce(topics.label, cast(steps.topic_id as varchar)), ' > ' order by steps.step) as path,
    from steps
    left join topics
        on steps.project_id = topics.project_id
        and steps.field = topics.field
        and steps.topic_id = topics.topic_id
    group by all
),

final as (
    select
        paths.project_id,
        paths.field,
        paths.scope,
        paths.path_length,
        labelled.path,
        paths.path_topic_ids,
        paths.sessions,
        paths.share,
    from paths
    inner join labelled
        on paths.project_id = labelled.project_id
        and paths.field = labelled.field
        and paths.scope = labelled.scope
        and paths.path_topic_ids = labelled.path_topic_ids
)

select * from final
