{#- Schemas are exactly the configured names (staging, intermediate, marts), not <target>_<name>:
    BI tools and turret.journeys read `marts.<table>`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
