-- Forecasting revenue change (the discount bounds 0.06 -/+ 0.01 written out: the columns are doubles)
SELECT sum(extendedprice * discount) AS revenue
FROM lineitem
WHERE shipdate >= DATE '1994-01-01'
    AND shipdate < DATE '1994-01-01' + INTERVAL '1' YEAR
    AND discount BETWEEN 0.05 AND 0.07
    AND quantity < 24
