{#- A test's `where: "__month__"` keeps the rows of the month being built (var month), so a
    broken month fails its own tests and not later months' (dbt's documented override);
    `where: "__year__"` likewise the year a yearly build rebuilds (var year). -#}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where') -%}
  {%- if where -%}
    {%- set where = where | replace('__month__', month_filter()) | replace('__year__', year_filter()) -%}
    {%- set filtered -%}
      (select * from {{ relation }} where {{ where }}) dbt_subquery
    {%- endset -%}
    {%- do return(filtered) -%}
  {%- else -%}
    {%- do return(relation) -%}
  {%- endif -%}
{%- endmacro %}
