-- A singular test: it fails when it returns rows.
select * from {{ ref('customer_revenue') }} where revenue < 0
