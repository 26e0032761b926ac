with

quarantined as (
    select * from {{ ref('stg_raw__quarantine') }}
),

final as (
    select
        project_id,
        event_id,
        stage,
        reason,
        segment,
        line_no,
        quarantined_at,
        cast(quarantined_at as date) as quarantined_on,
    from quarantined
)

select * from final
