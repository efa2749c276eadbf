module github.com/splitstream/splitstream

go 1.26.0
