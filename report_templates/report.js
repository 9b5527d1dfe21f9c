/* syncaudit report: filter, sort, search and paginate the findings tables.
   Vanilla ES5, inlined. Data comes from the JSON script element #findings-data;
   cells are filled with textContent only, so directory values stay inert text.
   Deep link: report.html#filter=TEXT (or ?filter=TEXT) pre-fills the "All findings" search. */
(function () {
  'use strict';
  var source = document.getElementById('findings-data');
  if (!source) { return; }
  var data = JSON.parse(source.textContent);
  var rows = data.rows;
  var C = {};
  data.columns.forEach(function (name, i) { C[name] = i; });
  var RANK = { critical: 4, high: 3, medium: 2, low: 1, info: 0 };
  var PAGE_SIZES = [25, 100, 500];
  var hay = new Array(rows.length);

  document.documentElement.className += ' js';

  function haystack(i) {
    var h = hay[i];
    if (h === undefined) { h = hay[i] = rows[i].join('\u001f').toLowerCase(); }
    return h;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text) { node.textContent = text; }
    return node;
  }

  // UPNs, DNs and addresses break after @ . , = (a <wbr>, which copy-paste leaves out), not
  // in the middle of a name; still text nodes only.
  function breakable(tag, className, text) {
    var node = el(tag, className);
    var parts = (text || '').split(/(?<=[@.,=])/);
    for (var i = 0; i < parts.length; i++) {
      if (i) { node.appendChild(document.createElement('wbr')); }
      node.appendChild(document.createTextNode(parts[i]));
    }
    return node;
  }

  function rowNode(i) {
    var r = rows[i];
    var tr = el('tr');
    tr.setAttribute('data-fp', r[C.fingerprint]);
    var td = el('td');
    td.appendChild(el('span', 'sev sev-' + r[C.severity], r[C.severity]));
    if (r[C.status] === 'waived') {
      var mark = el('span', 'waived', 'waived');
      mark.setAttribute('title', r[C.waiver_reason] || '');
      td.appendChild(mark);
    }
    tr.appendChild(td);
    td = el('td', 'obj');
    td.appendChild(breakable('span', 'upn', r[C.ad_upn]));
    td.appendChild(breakable('span', 'dn', r[C.ad_dn]));
    tr.appendChild(td);
    td = el('td', 'obj');
    td.appendChild(breakable('span', 'upn', r[C.cloud_upn]));
    if (r[C.cloud_state] && r[C.cloud_state] !== 'none') { td.appendChild(el('span', 'dn', r[C.cloud_state])); }
    tr.appendChild(td);
    td = el('td', 'obj');
    if (r[C.attribute]) { td.appendChild(el('span', 'attr', r[C.attribute])); }
    td.appendChild(breakable('span', 'val', r[C.value]));
    if (r[C.proposed_value]) { td.appendChild(breakable('span', 'prop', r[C.proposed_value])); }
    tr.appendChild(td);
    tr.appendChild(el('td', 'detail', r[C.detail]));
    td = el('td');
    td.appendChild(el('code', null, r[C.remediation]));
    tr.appendChild(td);
    return tr;
  }

  function Table(root, indices, controls) {
    this.root = root;
    this.all = indices;
    this.view = indices;
    this.page = 0;
    this.size = PAGE_SIZES[0];
    this.sortKey = null;
    this.sortDir = 1;
    this.query = '';
    this.filters = {};
    this.tbody = root.querySelector('tbody');
    this.input = controls.input;
    this.build(controls);
  }

  Table.prototype.build = function (controls) {
    var self = this;
    var bar = controls.bar;
    if (!this.input) {
      var label = el('label', null, 'Filter ');
      this.input = el('input');
      this.input.type = 'search';
      this.input.placeholder = 'filter these rows';
      this.input.setAttribute('autocomplete', 'off');
      label.appendChild(this.input);
      bar.appendChild(label);
    }
    var timer = null;
    this.input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () { self.setQuery(self.input.value); }, rows.length > 20000 ? 200 : 60);
    });
    (controls.selects || []).forEach(function (pair) {
      pair[1].addEventListener('change', function () {
        self.filters[pair[0]] = pair[1].value;
        self.apply();
      });
    });
    var ths = this.root.querySelectorAll('th[data-sort]');
    Array.prototype.forEach.call(ths, function (th) {
      th.tabIndex = 0;
      th.title = 'Sort';
      var go = function () { self.sortBy(th.getAttribute('data-sort'), th); };
      th.addEventListener('click', go);
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter') { go(); } });
    });
    this.pager = el('div', 'pager');
    this.info = el('span', 'info');
    this.prev = el('button', null, '‹ Previous');
    this.next = el('button', null, 'Next ›');
    this.prev.type = this.next.type = 'button';
    this.prev.addEventListener('click', function () { self.go(self.page - 1); });
    this.next.addEventListener('click', function () { self.go(self.page + 1); });
    var sizeLabel = el('label', null, 'Rows per page ');
    var sizeSelect = el('select');
    PAGE_SIZES.forEach(function (n) {
      var option = el('option', null, String(n));
      option.value = String(n);
      sizeSelect.appendChild(option);
    });
    sizeSelect.addEventListener('change', function () {
      self.size = parseInt(sizeSelect.value, 10);
      self.go(0);
    });
    sizeLabel.appendChild(sizeSelect);
    this.pager.appendChild(this.prev);
    this.pager.appendChild(this.info);
    this.pager.appendChild(this.next);
    this.pager.appendChild(sizeLabel);
    this.root.appendChild(this.pager);
  };

  Table.prototype.setQuery = function (text) {
    this.query = String(text || '').trim().toLowerCase();
    this.apply();
  };

  Table.prototype.apply = function () {
    var terms = this.query ? this.query.split(/\s+/) : [];
    var filters = this.filters;
    var keys = Object.keys(filters).filter(function (k) { return filters[k]; });
    if (!terms.length && !keys.length) {
      this.view = this.all;
    } else {
      this.view = this.all.filter(function (i) {
        var r = rows[i];
        for (var k = 0; k < keys.length; k++) {
          if (r[C[keys[k]]] !== filters[keys[k]]) { return false; }
        }
        if (terms.length) {
          var h = haystack(i);
          for (var t = 0; t < terms.length; t++) {
            if (h.indexOf(terms[t]) === -1) { return false; }
          }
        }
        return true;
      });
    }
    this.sort();
    this.go(0);
  };

  Table.prototype.sortBy = function (key, th) {
    this.sortDir = this.sortKey === key ? -this.sortDir : 1;
    this.sortKey = key;
    var ths = this.root.querySelectorAll('th[data-sort]');
    Array.prototype.forEach.call(ths, function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', this.sortDir > 0 ? 'ascending' : 'descending');
    this.sort();
    this.go(0);
  };

  Table.prototype.sort = function () {
    if (!this.sortKey) { return; }
    var col = C[this.sortKey];
    var dir = this.sortDir;
    var keyOf = this.sortKey === 'severity'
      ? function (i) { return -RANK[rows[i][col]]; }
      : function (i) { return rows[i][col].toLowerCase(); };
    var keyed = this.view.map(function (i) { return [keyOf(i), i]; });
    keyed.sort(function (a, b) {
      if (a[0] < b[0]) { return -dir; }
      if (a[0] > b[0]) { return dir; }
      return a[1] - b[1];
    });
    this.view = keyed.map(function (pair) { return pair[1]; });
  };

  Table.prototype.go = function (page) {
    var pages = Math.max(1, Math.ceil(this.view.length / this.size));
    this.page = Math.min(Math.max(page, 0), pages - 1);
    var start = this.page * this.size;
    var end = Math.min(start + this.size, this.view.length);
    var fragment = document.createDocumentFragment();
    for (var k = start; k < end; k++) { fragment.appendChild(rowNode(this.view[k])); }
    if (!this.view.length) {
      var tr = el('tr');
      var td = el('td', 'empty', 'No finding matches the filter.');
      td.colSpan = 6;
      tr.appendChild(td);
      fragment.appendChild(tr);
    }
    this.tbody.textContent = '';
    this.tbody.appendChild(fragment);
    this.info.textContent = this.view.length
      ? 'Showing ' + (start + 1).toLocaleString() + '–' + end.toLocaleString() + ' of ' +
        this.view.length.toLocaleString() + (this.view.length !== this.all.length ? ' (filtered from ' + this.all.length.toLocaleString() + ')' : '')
      : '0 of ' + this.all.length.toLocaleString();
    this.prev.disabled = this.page === 0;
    this.next.disabled = this.page >= pages - 1;
    this.pager.style.display = this.all.length > PAGE_SIZES[0] || this.query ? '' : 'none';
    this.root.setAttribute('data-matches', String(this.view.length));
    this.root.setAttribute('data-page', String(this.page));
  };

  var byCode = {};
  var everything = new Array(rows.length);
  for (var i = 0; i < rows.length; i++) {
    everything[i] = i;
    var code = rows[i][C.code];
    (byCode[code] = byCode[code] || []).push(i);
  }

  var perCode = document.querySelectorAll('.ftable[data-code]');
  Array.prototype.forEach.call(perCode, function (root) {
    var bar = el('div', 'controls');
    root.insertBefore(bar, root.firstChild);
    var table = new Table(root, byCode[root.getAttribute('data-code')] || [], { bar: bar });
    table.go(0);
  });

  var globalRoot = document.getElementById('all-findings');
  var global = null;
  if (globalRoot) {
    global = new Table(globalRoot, everything, {
      bar: globalRoot.querySelector('.controls'),
      input: document.getElementById('filter'),
      selects: [
        ['severity', document.getElementById('filter-severity')],
        ['family', document.getElementById('filter-family')],
        ['code', document.getElementById('filter-code')]
      ]
    });
    global.go(0);
  }

  function fromLocation() {
    if (!global) { return; }
    var match = /(?:^#|[#&])filter=([^&]*)/.exec(location.hash) || /[?&]filter=([^&]*)/.exec(location.search);
    if (!match) { return; }
    var text = match[1].replace(/\+/g, ' ');
    try { text = decodeURIComponent(text); } catch (e) { /* keep the raw text */ }
    global.input.value = text;
    global.setQuery(text);
    globalRoot.scrollIntoView();
  }
  window.addEventListener('hashchange', fromLocation);
  fromLocation();
  document.documentElement.setAttribute('data-report-ready', 'true');
}());
