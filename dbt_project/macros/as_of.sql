{#- The var('as_of') as a timestamp literal, or null when it is not given (fct_quota_usage then falls back
    to the data's own clock, see there). -#}
{% macro as_of_var() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value -%}
        cast('{{ value }}' as timestamp)
    {%- else -%}
        cast(null as timestamp)
    {%- endif -%}
{%- endmacro %}
