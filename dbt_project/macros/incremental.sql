{#- Marts that grow with history are incremental (docs/scaling.md, "What an hour costs").

    Such a mart has an `updated_at` column: when the dbt run that wrote the row started. On an incremental
    run it rebuilds only the keys (events, sessions, users, hours) whose inputs were written after the
    newest `updated_at` it holds, so an hour costs what changed, not the history:

    - a pre-hook deletes the rows of every changed key (`delete_changed`), also of keys that now have no
      row at all (a session that lost its last transition, an event that is gone);
    - the model selects the rows of the changed keys (`where (keys) in (changed)`), and the delete+insert
      strategy replaces those keys.

    The Python steps stamp what they write (pipeline.session_steps.updated_at, pipeline.journey_topics
    .updated_at, pipeline.fields.typed_at, raw.loaded_segments.loaded_at), so "changed" is a comparison of
    timestamps of the one warehouse host's clock, and the first build (or `dbt build --full-refresh`) builds
    everything. -#}

{% macro build_stamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}

{#- The newest row of the mart being built; -infinity on a first build, or when the mart was built before it
    kept `updated_at`, so everything counts as changed. -#}
{% macro last_build() -%}
    {%- if is_incremental() and has_updated_at() -%}
        (select coalesce(max(updated_at), cast('-infinity' as timestamp)) from {{ this }})
    {%- else -%}
        cast('-infinity' as timestamp)
    {%- endif -%}
{%- endmacro %}

{% macro has_updated_at() -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(this) -%}
            {%- if column.name | lower == 'updated_at' -%}{{ return(true) }}{%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(false) }}
{%- endmacro %}

{#- Written after the last build. A mart whose rows carry no `updated_at` yet (built before it was kept)
    counts everything as changed. -#}
{% macro changed_since_last_build(column) -%}
    ({{ column }} > {{ last_build() }} or {{ last_build() }} = cast('-infinity' as timestamp))
{%- endmacro %}

{#- The pre-hook of an incremental mart: remove every row of a changed key before the new rows go in. -#}
{% macro delete_changed(keys, changed_sql) -%}
    {%- if is_incremental() -%}
        delete from {{ this }} where ({{ keys | join(', ') }}) in ({{ changed_sql }})
    {%- else -%}
        select 1
    {%- endif -%}
{%- endmacro %}

{#- Only the changed keys on an incremental run; every row on a first build. -#}
{% macro only_changed(keys, changed_sql) -%}
    {%- if is_incremental() -%}
        where ({{ keys | join(', ') }}) in ({{ changed_sql }})
    {%- endif -%}
{%- endmacro %}

{#- Projects whose fields were typed anew since the last build: their enum and number rows, and the enum
    values copied onto their events, sessions and segments, are all rebuilt. -#}
{% macro retyped_projects() -%}
    select distinct project_id from {{ ref('stg_pipeline__fields') }}
    where {{ changed_since_last_build('typed_at') }}
{%- endmacro %}

{#- Events (project_id, event_id) whose enum or number rows may differ: loaded since the last build, of a
    retyped project, or gone from raw.events. -#}
{% macro changed_loaded_events() -%}
    select e.project_id, e.event_id
    from {{ ref('stg_raw__events') }} as e
    join {{ ref('stg_raw__loaded_segments') }} as l on l.segment = e.segment
    where {{ changed_since_last_build('l.loaded_at') }}
    union
    select e.project_id, e.event_id
    from {{ ref('stg_raw__events') }} as e
    where e.project_id in ({{ retyped_projects() }})
    {%- if is_incremental() %}
    union
    select t.project_id, t.event_id
    from {{ this }} as t
    anti join {{ ref('stg_raw__events') }} as e on e.project_id = t.project_id and e.event_id = t.event_id
    {%- endif %}
{%- endmacro %}

{#- Sessions (project_id, field, session_id) whose steps or journey topics were written since the last
    build, of a retyped project, or gone. The same for the events of fct_events, which carry their
    session's journey topic. -#}
{% macro changed_sessions() -%}
    select project_id, field, session_id from {{ ref('stg_pipeline__session_steps') }}
    where {{ changed_since_last_build('updated_at') }}
    union
    select project_id, field, session_id from {{ ref('stg_pipeline__journey_topics') }}
    where {{ changed_since_last_build('updated_at') }}
    union
    select project_id, field, session_id from {{ ref('stg_pipeline__session_steps') }}
    where project_id in ({{ retyped_projects() }})
    {%- if is_incremental() %}
    union
    select t.project_id, t.field, t.session_id
    from {{ this }} as t
    anti join {{ ref('stg_pipeline__session_steps') }} as s
        on s.project_id = t.project_id and s.field = t.field and s.session_id = t.session_id
    {%- endif %}
{%- endmacro %}

{#- Users (project_id, field, user_id) with a changed session: their cross-session journeys are rebuilt. -#}
{% macro changed_users() -%}
    select project_id, field, user_id from {{ ref('stg_pipeline__session_steps') }}
    where (project_id, field, session_id) in ({{ changed_sessions() }})
    {%- if is_incremental() %}
    union
    select project_id, field, user_id from {{ this }}
    where (project_id, field, session_id) in ({{ changed_sessions() }})
    {%- endif %}
{%- endmacro %}

{#- Hours (project_id, field, period_start) whose topic counts may differ: an event fct_events wrote since
    the last build happened in them, or their total no longer matches fct_events (one aggregate over two
    columns: how an hour whose last event went away is found). -#}
{% macro changed_hours() -%}
    select distinct project_id, field, date_trunc('hour', occurred_at) from {{ ref('fct_events') }}
    where {{ changed_since_last_build('updated_at') }}
    {%- if is_incremental() %}
    union
    select project_id, field, period_start from (
        select project_id, field, period_start, sum(events) as events from {{ this }} group by all
    ) as counted
    full join (
        select project_id, field, date_trunc('hour', occurred_at) as period_start, count(*) as events
        from {{ ref('fct_events') }} group by all
    ) as actual using (project_id, field, period_start)
    where counted.events is distinct from actual.events
    {%- endif %}
{%- endmacro %}

{#- The config of an incremental mart keyed by `keys`, whose changed keys the macro named `changed` selects
    (the pre-hook is rendered when it runs, so it knows whether the run is incremental). -#}
{% macro incremental_mart(keys, changed) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=keys,
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_changed(" ~ (keys | tojson) ~ ", " ~ changed ~ "()) }}",
    ) }}
{%- endmacro %}
