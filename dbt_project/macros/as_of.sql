{#- The reference time for quota periods: var('as_of') when given, else the current UTC time (naive, like
    every timestamp in the warehouse). -#}
{% macro as_of() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value -%}
        cast('{{ value }}' as timestamp)
    {%- else -%}
        cast(timezone('UTC', now()) as timestamp)
    {%- endif -%}
{%- endmacro %}
