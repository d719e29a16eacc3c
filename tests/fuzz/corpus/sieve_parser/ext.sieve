require ["body","envelope","subaddress","copy","vacation"];
if body :text :contains "money" { redirect :copy "a@example.com"; }
if envelope :detail "to" "detail" { vacation :days 3 "away"; }
