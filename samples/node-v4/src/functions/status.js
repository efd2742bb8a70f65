// status: answers with the status code from the route (no body for 204, 205 and 304).
const { app } = require('@azure/functions');

app.http('status', {
    methods: ['GET'],
    authLevel: 'anonymous',
    route: 'status/{code:int}',
    handler: async (request) => {
        const status = Number(request.params.code);
        // A Fetch Response refuses a body with these codes, and any code outside 200-599.
        const body = [204, 205, 304].includes(status) ? undefined : `status ${status}`;
        return { status, body };
    },
});
