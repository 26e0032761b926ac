with

source as (
    select * from {{ source('raw', 'projects') }}
),

final as (
    select
        project_id,
        name as project_name,
        lower(plan) as plan,
        monthly_limit,
        created_at,
    from source
)

select * from final
