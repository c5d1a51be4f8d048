//! The README's copy of the option table is the option table.

#[test]
fn readme_option_table_is_the_option_table() {
    let readme = include_str!("../README.md");
    let table = circuit_spec::markdown_table();
    let header = table.lines().next().expect("a header");
    let start = readme
        .find(header)
        .expect("the README has the option table under its header");
    let in_readme: Vec<&str> = readme[start..]
        .lines()
        .take_while(|line| line.starts_with('|'))
        .collect();
    let in_code: Vec<&str> = table.lines().collect();
    assert_eq!(
        in_readme, in_code,
        "the README's option table differs from `circuit_spec::OPTIONS`; paste `circuit_spec::markdown_table()` over it"
    );
}

#[test]
fn readme_retry_option_table_is_the_retry_option_table() {
    let readme = include_str!("../README.md");
    let table = circuit_spec::retry::markdown_table();
    let first_row = table.lines().nth(2).expect("a first row");
    let start = readme
        .find(first_row)
        .expect("the README has the retry option table");
    let header_start = readme[..start]
        .rfind("| option | range | default | meaning |")
        .expect("under its header");
    let in_readme: Vec<&str> = readme[header_start..]
        .lines()
        .take_while(|line| line.starts_with('|'))
        .collect();
    let in_code: Vec<&str> = table.lines().collect();
    assert_eq!(
        in_readme, in_code,
        "the README's retry option table differs from `circuit_spec::retry::RETRY_OPTIONS`; paste \
         `circuit_spec::retry::markdown_table()` over it"
    );
}
