-- Top supplier (the spec's view as a WITH clause; revenue is a double here, and Presto computes the view
-- once per reference with the rows summed in another order, so equality is within half a cent)
WITH revenue AS (
    SELECT suppkey AS supplier_no, sum(extendedprice * (1 - discount)) AS total_revenue
    FROM lineitem
    WHERE shipdate >= DATE '1996-01-01'
        AND shipdate < DATE '1996-01-01' + INTERVAL '3' MONTH
    GROUP BY suppkey
)
SELECT s.suppkey, s.name, s.address, s.phone, r.total_revenue
FROM supplier AS s, revenue AS r
WHERE s.suppkey = r.supplier_no
    AND r.total_revenue >= (SELECT max(total_revenue) FROM revenue) - 0.005
ORDER BY s.suppkey
